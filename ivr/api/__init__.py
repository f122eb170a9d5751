"""The operator API and console (aiohttp): the app and route table (`app`), campaign handlers
(`campaigns`), what handlers share (`state`), auth and errors (`guard`), the OpenAPI document
(`openapi`), JSON Schemas (`schemas`, checked by `validate`), the live console (`console`,
`static/`) and Prometheus metrics (`metrics`). The only package that imports aiohttp."""
