"""The HTTP server: health, readiness, metrics, the JSON API and the dashboard. Pages and the
API read through `store.reads` and write through the services (`watching`, `subscribing`,
`users`, `following`); may import every layer below it. Only `app` and `cli` import it."""
