"""myapp: an application whose background work is a package of FastWorker tasks."""
