"""Health of an installation, as supervision (Nagios, Centreon, a container engine) asks for it:
each check (`checks`, `pbx`) gives a `Check` in the Nagios plugin states (`state`); the dialer
workers' heartbeats they read are defined once (`heartbeat`). Used by `ivr health` and by the
console's `/api/health`."""
