-- The day of a start before 1970 in the last second of its day (23:59:59.250): integer division
-- cut the milliseconds toward zero, that is to the next day's midnight; Postgres's is right.
ALTER TABLE `time_entries` DROP COLUMN `start_day`;--> statement-breakpoint
ALTER TABLE `time_entries` ADD `start_day` text GENERATED ALWAYS AS (strftime('%Y-%m-%d', start_time / 1000.0, 'unixepoch')) VIRTUAL;
