"""The demo: a throwaway database, a stand-in app under load, the daemon and Prometheus."""
