ALTER TABLE "feature_access_events" ALTER COLUMN "id" SET DATA TYPE bigint;--> statement-breakpoint
ALTER TABLE "feature_access_events" ALTER COLUMN "id" SET MAXVALUE 9223372036854775807;