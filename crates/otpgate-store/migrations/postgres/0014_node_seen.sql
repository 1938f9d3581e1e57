-- The nodes of a cluster and when each last said it was alive: a node divides the per-address
-- rate limit among the live nodes, so an address gets the configured rate from the cluster,
-- not from each node.
CREATE TABLE node_seen (
    node    TEXT PRIMARY KEY,
    seen_ms BIGINT NOT NULL
);
