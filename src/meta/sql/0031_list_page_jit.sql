-- 0030: a listing page is planned without JIT compilation (issue 10).
--
-- mvault_list_page (0021) plans each page for its values.  A page of 2,048
-- rows (fs_ns.c, LIST_PAGE_MAX) in a folder of 10,000 files is estimated
-- above jit_above_cost (100,000), and PostgreSQL then compiled the page's
-- expressions first: ~260 ms of the server's time for a page that runs in
-- ~30 ms.  A page is never long enough to win that back.  ALTER FUNCTION
-- adds this to the function's settings (its SET enable_sort = off stays).

ALTER FUNCTION mvault_list_page(text, uuid, bigint, uuid, bigint, integer) SET jit = off;
