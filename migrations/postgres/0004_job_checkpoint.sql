-- A job's checkpoint: what its handler has done so far, so a re-claimed job resumes.
ALTER TABLE jobs ADD COLUMN checkpoint TEXT NOT NULL DEFAULT '{}';
