// config.json is written by sdeliver for each environment: apiBaseurl, env, version and
// the keys of site.config in sdeliver.yaml.
const show = (id, text) => { document.getElementById(id).textContent = text; };

fetch("config.json")
  .then((response) => response.json())
  .then((config) => {
    if (config.title) show("title", config.title);
    show("release", config.env + " · release " + config.version);
    return fetch(config.apiBaseurl + "hello");
  })
  .then((response) => response.json())
  .then((answer) => show("answer", answer.message + " (API " + answer.version + ")"))
  .catch((error) => show("answer", "the API did not answer: " + error));
