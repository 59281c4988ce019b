//! `ringward replay`: the incident replay benchmark. (Owned by the lead; being built: issue 6.)
