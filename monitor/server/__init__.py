"""The HTTP server: health, readiness, metrics, the JSON API and the dashboard, all reading
through `store.reads`. May import everything below it (`notify` for the change document,
`store`, `upstream`, `config` and the base modules); nothing imports it but `app`."""
