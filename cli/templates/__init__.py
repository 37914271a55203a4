"""Project templates for `sdeliver new` (data, not code: one directory per template)."""
