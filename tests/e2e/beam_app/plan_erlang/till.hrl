%% The name the till's stock server registers under, shared by its callers.
-define(STOCK, till_stock).
