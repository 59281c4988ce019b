//! `ringward demo`: the router in front of three simulated hosts. (Owned by the lead; being built: issue 6.)
