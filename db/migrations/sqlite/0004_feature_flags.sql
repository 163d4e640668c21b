CREATE TABLE `feature_access_events` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`flag_id` integer NOT NULL,
	`user_id` integer NOT NULL,
	`accessed_at` integer NOT NULL,
	`ip` text,
	`user_agent` text,
	`accessed_day` text GENERATED ALWAYS AS (strftime('%Y-%m-%d', accessed_at / 1000, 'unixepoch')) VIRTUAL,
	FOREIGN KEY (`flag_id`) REFERENCES `feature_flags`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `feature_access_events_flag_time_idx` ON `feature_access_events` (`flag_id`,`accessed_at`);--> statement-breakpoint
CREATE TABLE `feature_flag_audit` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`flag_key` text NOT NULL,
	`actor_id` integer,
	`action` text NOT NULL,
	`before` text,
	`after` text,
	`created_at` integer NOT NULL,
	FOREIGN KEY (`actor_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE set null
);
--> statement-breakpoint
CREATE INDEX `feature_flag_audit_flag_idx` ON `feature_flag_audit` (`flag_key`,`id`);--> statement-breakpoint
CREATE TABLE `feature_flag_users` (
	`flag_id` integer NOT NULL,
	`user_id` integer NOT NULL,
	`created_at` integer NOT NULL,
	PRIMARY KEY(`flag_id`, `user_id`),
	FOREIGN KEY (`flag_id`) REFERENCES `feature_flags`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `feature_flag_users_user_idx` ON `feature_flag_users` (`user_id`);--> statement-breakpoint
CREATE TABLE `feature_flags` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`key` text NOT NULL,
	`name` text NOT NULL,
	`description` text NOT NULL,
	`is_enabled` integer NOT NULL,
	`rollout_percentage` integer NOT NULL,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `feature_flags_key_unique` ON `feature_flags` (`key`);