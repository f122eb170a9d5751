"""The campaign engine, in Redis: what a campaign is asked to do (`spec`), creating and stopping
it (`store`), the scheduler's atomic steps (`scheduler`, Lua in `scripts`, per-person state in
`state`), changes under way (`ops`: quota, extension), what it reads out as (`report`, the
after-action numbers in `afteraction` and page in `reportpage`, the live feed in `live`), the
estimate, the prepared scenarios and the message a call plays (`message`).

It imports neither aiohttp nor panoramisk, nor `ivr.pbx` nor `ivr.voice`: the dialer, the
phone lines and the API drive it."""
