"""The HTTP API (and, later, the portal pages) over the use-case layer: authenticate (the
center's Keystone, ``X-Auth-Token``), authorise (``yunshang.authz``), call a use case
(``yunshang.usecases``), render JSON. Stateless: everything lives in the lifecycle store."""
