"""The Compress page: methods applied to a version, results side by side with their source."""
