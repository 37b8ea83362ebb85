-- Tokens flagged invalid although not expired, counted exactly (the plan's Risk 3: every one of
-- them is a user locked out). Through the migration's own index on "isValid" this reads only the
-- invalid tokens: cheap while they are few (right after the migration), or always with an index
-- on ("expiresAt") WHERE NOT "isValid". The drift check asks the planner's cost first
-- (large_tables.exact_max_cost) and keeps the sample's estimate when it is not cheap.
SELECT count(*) AS wrongly_invalid
FROM {tokens}
WHERE NOT {is_valid} AND {expires_at} > (now() AT TIME ZONE 'UTC')
