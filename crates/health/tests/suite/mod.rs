mod props;
mod sim;
mod timelines;
