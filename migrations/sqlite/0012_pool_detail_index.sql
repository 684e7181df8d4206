-- The servers of a pool as its detail lists them (GET /api/pool/{id}/): in id order, every
-- listed column in the index, so the answer is one index range with no table lookups and no sort.
CREATE INDEX servers_pool_detail ON servers (resource_pool_id, id, name, model, serial_number, manufacturer, power_state, bmc_url);
