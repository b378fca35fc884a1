DROP TRIGGER IF EXISTS feed_status_change; -- created by run while a sink is configured
DROP TABLE feed_outbox;
DROP TABLE feed_sinks;
