-- The number of posts, kept by triggers so that GET /posts answers its `total` without counting the
-- table: `count(*)` walks a whole index, and the first page would slow down as the table grows.
-- The triggers follow every insert and delete, cascaded deletes too (a user's posts go with the user).
-- (An `INSERT OR REPLACE` that replaced a post would skip the delete trigger unless recursive_triggers
-- is on; the application never replaces posts.) Per-author totals still count, through posts_author_idx.
CREATE TABLE `row_counts` (
	`name` text PRIMARY KEY NOT NULL,
	`n` integer NOT NULL
) WITHOUT ROWID;
--> statement-breakpoint
INSERT INTO `row_counts` (`name`, `n`) SELECT 'posts', count(*) FROM `posts`;
--> statement-breakpoint
CREATE TRIGGER `posts_count_insert` AFTER INSERT ON `posts` BEGIN
	UPDATE `row_counts` SET `n` = `n` + 1 WHERE `name` = 'posts';
END;
--> statement-breakpoint
CREATE TRIGGER `posts_count_delete` AFTER DELETE ON `posts` BEGIN
	UPDATE `row_counts` SET `n` = `n` - 1 WHERE `name` = 'posts';
END;
