//! Dense ids for JSON values, so model states compare and hash as integers.

use std::collections::HashMap;

use serde_json::Value;

/// Maps values to ids 0.. in order of first sight; `null` is always id 0.
#[derive(Debug)]
pub struct Interner {
    ids: HashMap<String, u64>,
    values: Vec<Value>,
}

impl Default for Interner {
    fn default() -> Self {
        let mut i = Interner {
            ids: HashMap::new(),
            values: Vec::new(),
        };
        i.id(&Value::Null);
        i
    }
}

impl Interner {
    pub fn id(&mut self, v: &Value) -> u64 {
        // Canonical text: serde_json writes object keys in sorted order (no
        // preserve_order feature), so equal values get equal text.
        let text = v.to_string();
        if let Some(&id) = self.ids.get(&text) {
            return id;
        }
        let id = self.values.len() as u64;
        self.ids.insert(text, id);
        self.values.push(v.clone());
        id
    }

    pub fn value(&self, id: u64) -> &Value {
        &self.values[id as usize]
    }
}
