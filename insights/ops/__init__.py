"""Running the service at scale: the work queue, its workers and the shared limits they obey."""
