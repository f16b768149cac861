"""Models of this layer are added by their own issue."""
