DROP INDEX pscs_change_seq;
DROP TABLE pscs;
DELETE FROM counters WHERE name = 'pscs';
DELETE FROM service_state WHERE key = 'pscs_since';
