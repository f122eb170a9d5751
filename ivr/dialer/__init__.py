"""The dialer: workers that keep every line of one Asterisk busy with the campaigns' next calls
(`worker`), the campaign's audio and call requests (`audio`), the speech + AMI + caller bundle
(`alerter`), and the self-test call of each route (`selftest`)."""
