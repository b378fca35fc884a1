DROP TRIGGER feed_status_change;
DROP TABLE feed_outbox;
DROP TABLE feed_sinks;
