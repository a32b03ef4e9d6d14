"""End-to-end tests: the real ``failover`` executable, in subprocesses, against real
emulators (moto_server, Azurite, PowerDNS), on an :class:`EmulatedWorld`."""
