// config.json is written by sdeliver for each environment: apiBaseurl, env, release (the
// release id r-…), source_revision (the commit, "-dirty" when built from changed files),
// version (the same commit, or the build time without git) and the keys of site.config.
const show = (id, text) => { document.getElementById(id).textContent = text; };

fetch("config.json")
  .then((response) => response.json())
  .then((config) => {
    if (config.title) show("title", config.title);
    const revision = (config.source_revision || "").replace(/^([0-9a-f]{7})[0-9a-f]{33}/, "$1");
    show("release", config.env + " · release " + config.release +
      (revision ? " (revision " + revision + ")" : ""));
    return fetch(config.apiBaseurl + "hello");
  })
  .then((response) => response.json())
  .then((answer) => show("answer", answer.message + " (API " + answer.version + ")"))
  .catch((error) => show("answer", "the API did not answer: " + error));
