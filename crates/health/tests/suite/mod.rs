mod guard;
mod probation;
mod props;
mod sim;
mod timelines;
