"""The embedded default for `ivr demo` and the tests: the sandbox Asterisk (`asterisk`) and a
private redis-server (`redisserver`)."""
