"""Tools that make shipped data (the generic start models) and pictures of the preview workflow."""
