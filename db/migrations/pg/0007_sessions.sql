ALTER TABLE "auth_tokens" ADD COLUMN "last_used_at" timestamp (3) with time zone;--> statement-breakpoint
ALTER TABLE "auth_tokens" ADD COLUMN "user_agent" text;--> statement-breakpoint
-- Sessions from before: last used when they were made, as far as anyone can tell.
UPDATE "auth_tokens" SET "last_used_at" = "created_at";
