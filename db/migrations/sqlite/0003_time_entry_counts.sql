CREATE TABLE `time_entry_counts` (
	`user_id` integer PRIMARY KEY NOT NULL,
	`entries` integer NOT NULL,
	FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
-- Written by hand (drizzle-kit declares no triggers): the count follows every insert and delete,
-- in the same transaction, whatever code path writes. Existing entries are counted once here.
CREATE TRIGGER `time_entry_counts_insert` AFTER INSERT ON `time_entries` BEGIN
	INSERT INTO `time_entry_counts` (`user_id`, `entries`) VALUES (NEW.`user_id`, 1)
	ON CONFLICT (`user_id`) DO UPDATE SET `entries` = `entries` + 1;
END;
--> statement-breakpoint
CREATE TRIGGER `time_entry_counts_delete` AFTER DELETE ON `time_entries` BEGIN
	UPDATE `time_entry_counts` SET `entries` = `entries` - 1 WHERE `user_id` = OLD.`user_id`;
END;
--> statement-breakpoint
INSERT INTO `time_entry_counts` (`user_id`, `entries`)
SELECT `user_id`, count(*) FROM `time_entries` GROUP BY `user_id`;
