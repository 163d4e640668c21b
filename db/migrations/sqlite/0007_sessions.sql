ALTER TABLE `auth_tokens` ADD `last_used_at` integer;--> statement-breakpoint
ALTER TABLE `auth_tokens` ADD `user_agent` text;--> statement-breakpoint
-- Sessions from before: last used when they were made, as far as anyone can tell.
UPDATE `auth_tokens` SET `last_used_at` = `created_at`;
