-- posts.like_count follows likes in every case: a like, an unlike, and likes removed by a cascade
-- when their user or post is deleted. Concurrent likes of one post queue on the post's row lock.
CREATE FUNCTION likes_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP = 'INSERT' THEN
		UPDATE posts SET like_count = like_count + 1 WHERE id = NEW.post_id;
	ELSE
		UPDATE posts SET like_count = like_count - 1 WHERE id = OLD.post_id;
	END IF;
	RETURN NULL;
END $$;
--> statement-breakpoint
CREATE TRIGGER likes_count AFTER INSERT OR DELETE ON likes FOR EACH ROW EXECUTE FUNCTION likes_count();
--> statement-breakpoint
-- The number of posts, so GET /posts answers its `total` without counting the table (count(*) walks
-- the whole table or index, and the first page would slow down as the table grows). Cascaded deletes
-- count too. Per-author totals still count, through posts_author_idx.
INSERT INTO row_counts (name, n) SELECT 'posts', count(*) FROM posts;
--> statement-breakpoint
CREATE FUNCTION posts_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	UPDATE row_counts SET n = n + CASE WHEN TG_OP = 'INSERT' THEN 1 ELSE -1 END WHERE name = 'posts';
	RETURN NULL;
END $$;
--> statement-breakpoint
CREATE TRIGGER posts_count AFTER INSERT OR DELETE ON posts FOR EACH ROW EXECUTE FUNCTION posts_count();
