CREATE TABLE `idle_sessions` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`time_entry_id` integer NOT NULL,
	`start_time` integer NOT NULL,
	`end_time` integer NOT NULL,
	`created_at` integer NOT NULL,
	FOREIGN KEY (`time_entry_id`) REFERENCES `time_entries`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `idle_sessions_entry_start_idx` ON `idle_sessions` (`time_entry_id`,`start_time`);--> statement-breakpoint
CREATE TABLE `time_entries` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`user_id` integer NOT NULL,
	`project_id` integer,
	`title` text NOT NULL,
	`description` text NOT NULL,
	`start_time` integer NOT NULL,
	`end_time` integer,
	`idle_seconds` integer NOT NULL,
	`warned_at` integer,
	`created_at` integer NOT NULL,
	`is_active` integer GENERATED ALWAYS AS (end_time is null) VIRTUAL,
	`duration_seconds` integer GENERATED ALWAYS AS ((end_time - start_time) / 1000) VIRTUAL,
	`end_key` integer GENERATED ALWAYS AS (coalesce(end_time, 9007199254740991)) VIRTUAL,
	`start_day` text GENERATED ALWAYS AS (strftime('%Y-%m-%d', start_time / 1000, 'unixepoch')) VIRTUAL,
	`duration_key` integer GENERATED ALWAYS AS (coalesce((end_time - start_time) / 1000, 2147483647)) VIRTUAL,
	FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`project_id`) REFERENCES `projects`(`id`) ON UPDATE no action ON DELETE set null
);
--> statement-breakpoint
CREATE UNIQUE INDEX `time_entries_one_active_key` ON `time_entries` (`user_id`) WHERE end_time is null;--> statement-breakpoint
CREATE INDEX `time_entries_user_start_idx` ON `time_entries` (`user_id`,`start_time`,`id`);--> statement-breakpoint
CREATE INDEX `time_entries_user_end_idx` ON `time_entries` (`user_id`,`end_key`,`id`);--> statement-breakpoint
CREATE INDEX `time_entries_user_duration_idx` ON `time_entries` (`user_id`,`duration_key`,`id`);--> statement-breakpoint
CREATE INDEX `time_entries_user_title_idx` ON `time_entries` (`user_id`,`title`,`id`);--> statement-breakpoint
CREATE INDEX `time_entries_user_active_idx` ON `time_entries` (`user_id`,`is_active`,`id`);--> statement-breakpoint
CREATE INDEX `time_entries_user_project_start_idx` ON `time_entries` (`user_id`,`project_id`,`start_time`,`id`);--> statement-breakpoint
CREATE INDEX `time_entries_project_idx` ON `time_entries` (`project_id`);--> statement-breakpoint
CREATE INDEX `time_entries_running_idx` ON `time_entries` (`start_time`) WHERE end_time is null and warned_at is null;--> statement-breakpoint
CREATE TABLE `time_entry_tags` (
	`time_entry_id` integer NOT NULL,
	`tag_id` integer NOT NULL,
	PRIMARY KEY(`time_entry_id`, `tag_id`),
	FOREIGN KEY (`time_entry_id`) REFERENCES `time_entries`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`tag_id`) REFERENCES `tags`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `time_entry_tags_tag_idx` ON `time_entry_tags` (`tag_id`,`time_entry_id`);