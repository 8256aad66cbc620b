DROP TABLE op_log;
