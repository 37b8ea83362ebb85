-- Which database and role the pre-flight session landed on, for its report.
SELECT current_database() AS database, current_user AS role
