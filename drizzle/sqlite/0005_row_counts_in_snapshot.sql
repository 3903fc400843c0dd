-- row_counts was made by the custom migration 0003; this entry only brings it into drizzle-kit's
-- snapshot now that the schema file declares the table (so the domain can query it through drizzle).
SELECT 1;
