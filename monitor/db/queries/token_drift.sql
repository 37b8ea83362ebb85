-- Tokens whose isValid disagrees with expiresAt. Prisma stores UTC in a timestamp without
-- time zone, so "now" is taken in UTC explicitly: comparing with now() directly would shift
-- every expiry by the session's TimeZone. The boundary is the trigger's: valid while
-- expiresAt > now. "now" is a sub-select, computed once per statement rather than per row (a
-- quarter of the sweep's CPU at ten million rows). On a large table the token table is read
-- through TABLESAMPLE SYSTEM, and "tokens" counts the rows sampled (the check scales the counts
-- to the whole table); or the drift sweep reads one slice of its blocks, {where} being a ctid
-- range (a TID Range Scan).
SELECT
    count(*) FILTER (WHERE {is_valid} AND {expires_at} <= (SELECT now() AT TIME ZONE 'UTC'))
        AS stale_valid,
    count(*) FILTER (WHERE NOT {is_valid} AND {expires_at} > (SELECT now() AT TIME ZONE 'UTC'))
        AS wrongly_invalid,
    count(*) AS tokens
FROM {tokens}
{where}
