-- Users holding a token that has not expired: the app's signed-in users. Prisma stores UTC in
-- a timestamp without time zone, so "now" is taken in UTC (now() alone would shift by TimeZone).
SELECT count(DISTINCT {user_id}) AS value
FROM {tokens}
WHERE {expires_at} > (now() AT TIME ZONE 'UTC')
