CREATE TABLE "time_entry_counts" (
	"user_id" integer PRIMARY KEY NOT NULL,
	"entries" integer NOT NULL
);
--> statement-breakpoint
ALTER TABLE "time_entry_counts" ADD CONSTRAINT "time_entry_counts_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
-- Written by hand (drizzle-kit declares no triggers): the count follows every insert and delete,
-- in the same transaction, whatever code path writes. Existing entries are counted once here.
CREATE FUNCTION "time_entry_counts_follow"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP = 'INSERT' THEN
		INSERT INTO "time_entry_counts" ("user_id", "entries") VALUES (NEW."user_id", 1)
		ON CONFLICT ("user_id") DO UPDATE SET "entries" = "time_entry_counts"."entries" + 1;
	ELSE
		UPDATE "time_entry_counts" SET "entries" = "entries" - 1 WHERE "user_id" = OLD."user_id";
	END IF;
	RETURN NULL;
END $$;
--> statement-breakpoint
CREATE TRIGGER "time_entry_counts_follow" AFTER INSERT OR DELETE ON "time_entries"
FOR EACH ROW EXECUTE FUNCTION "time_entry_counts_follow"();
--> statement-breakpoint
INSERT INTO "time_entry_counts" ("user_id", "entries")
SELECT "user_id", count(*) FROM "time_entries" GROUP BY "user_id";
