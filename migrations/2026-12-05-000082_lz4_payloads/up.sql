-- Large JSON (the events of a stage of thousands, each carrying a page of recipients; the
-- engine state of an approval that names them) is compressed with lz4 rather than pglz:
-- pglz_compress was the top Postgres symbol of a request asking a role of 20,000 (`perf`),
-- and lz4 compresses several times faster for a similar size on JSON. Values written from now
-- on; older ones stay as they are, and both read back the same.
ALTER TABLE events ALTER COLUMN payload SET COMPRESSION lz4;
ALTER TABLE approvals ALTER COLUMN engine SET COMPRESSION lz4;
ALTER TABLE approvals ALTER COLUMN definition SET COMPRESSION lz4;
ALTER TABLE approvals ALTER COLUMN view SET COMPRESSION lz4;
