CREATE TRIGGER company_changes_insert AFTER INSERT ON companies BEGIN -- a new company: log its change_seq
  INSERT INTO company_changes (change_seq, company_number) VALUES (NEW.change_seq, NEW.company_number);
END;
