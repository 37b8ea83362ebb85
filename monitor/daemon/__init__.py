"""The daemon: the assembled monitor, what one replica runs, leadership among replicas,
reload on SIGHUP."""
