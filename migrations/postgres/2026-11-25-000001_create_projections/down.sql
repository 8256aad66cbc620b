DROP TABLE projection_snapshots;
DROP TABLE projection_rows;
DROP TABLE projections;
