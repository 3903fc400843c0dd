-- posts.like_count follows likes in every case: a like, an unlike, and likes removed by a cascade
-- when their user is deleted.
CREATE TRIGGER `likes_count_insert` AFTER INSERT ON `likes` BEGIN
	UPDATE `posts` SET `like_count` = `like_count` + 1 WHERE `id` = NEW.`post_id`;
END;
--> statement-breakpoint
CREATE TRIGGER `likes_count_delete` AFTER DELETE ON `likes` BEGIN
	UPDATE `posts` SET `like_count` = `like_count` - 1 WHERE `id` = OLD.`post_id`;
END;
