-- scan2pay PSP: the merchant's board (GET /merchant/stream) reads a
-- merchant's checkouts of one day, newest first, and sums them per
-- currency and status; without this index it would read every checkout
-- the merchant ever had.
CREATE INDEX checkouts_of_merchant_by_time ON checkouts (merchant_id, created_at);
