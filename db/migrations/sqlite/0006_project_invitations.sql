CREATE TABLE `project_invitations` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`project_id` integer NOT NULL,
	`username` text NOT NULL,
	`username_key` text NOT NULL,
	`invitee_id` integer,
	`invited_by` integer NOT NULL,
	`created_at` integer NOT NULL,
	FOREIGN KEY (`project_id`) REFERENCES `projects`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`invitee_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`invited_by`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `project_invitations_project_name_key` ON `project_invitations` (`project_id`,`username_key`);--> statement-breakpoint
CREATE INDEX `project_invitations_invitee_idx` ON `project_invitations` (`invitee_id`);