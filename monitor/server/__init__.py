"""The HTTP server: probes, the JSON API (each route declared once in `routes`, the OpenAPI
document made from the declarations), the dashboard, the event pages and the member's page.
Pages and the API read through `store.reads` and write through the services (`watching`,
`subscribing`, `users`, `following`). Never imports the poller, the Discovery jobs, the
clients, the dispatcher, the notifiers, the repository or the daemon's assembly (a
contract says so). Only `assembly` and `cli` import it."""
