-- The servers of a pool as its detail lists them (GET /api/pool/{id}/): in id order, the listed
-- columns included, so the answer is one index range (index-only once vacuumed) with no sort.
CREATE INDEX servers_pool_detail ON servers (resource_pool_id, id) INCLUDE (name, model, serial_number, manufacturer, power_state, bmc_url);
